"""Unit-aware helpers shared by the notebooks."""

import pint_xarray
import xarray as xr

units = pint_xarray.unit_registry
SEAWATER_DENSITY = 1025.0 * units("kg / m**3")
SEAWATER_HEAT_CAPACITY = 3990.0 * units("J / kg / K")


def heat_content(temperature: xr.DataArray, thickness: xr.DataArray) -> xr.DataArray:
    """Heat content per unit area (J m-2) of layers at `temperature` (degC)."""
    temp = temperature.pint.quantify().pint.to("K")
    dz = thickness.pint.quantify()
    joules = SEAWATER_DENSITY * SEAWATER_HEAT_CAPACITY * temp * dz
    return joules.pint.to("J / m**2").sum("depth").pint.dequantify()
