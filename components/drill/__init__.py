"""The zone drill: FIS experiments per zone and zonal autoshift."""
