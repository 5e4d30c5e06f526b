"""Unit-aware helpers shared by the notebooks."""

import pint_xarray  # noqa: F401  (registers the .pint accessor)
import xarray as xr

SEAWATER_DENSITY = 1025.0  # kg m-3
SEAWATER_HEAT_CAPACITY = 3990.0  # J kg-1 K-1


def heat_content(temperature: xr.DataArray, thickness: xr.DataArray) -> xr.DataArray:
    """Heat content per unit area (J m-2) of layers at `temperature` (degC)."""
    temp = temperature.pint.quantify().pint.to("K")
    dz = thickness.pint.quantify()
    joules = SEAWATER_DENSITY * SEAWATER_HEAT_CAPACITY * temp * dz
    return joules.pint.to("J / m**2").sum("depth").pint.dequantify()
