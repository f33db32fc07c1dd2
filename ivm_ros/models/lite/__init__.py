"""The embedded ("lite") IVM model: trained here on the simulator's data with DWSL; ships in the package."""
