"""Small helpers the tutorial notebooks share."""

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["anomaly", "make_air_temperature"]


def make_air_temperature(ntime=365, seed=0):
    """A synthetic daily air temperature field, like xarray's tutorial dataset."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2013-01-01", periods=ntime, freq="D")
    lat = np.linspace(15, 75, 7)
    lon = np.linspace(200, 330, 14)
    air = 275 + 5 * rng.standard_normal((ntime, lat.size, lon.size))
    return xr.Dataset({"air": (("time", "lat", "lon"), air, {"units": "K"})},
                      coords={"time": time, "lat": lat, "lon": lon})


def anomaly(da, dim="time"):
    """Departure from the mean along `dim`."""
    return da - da.mean(dim)
