"""The data engine (`ivm-ros sim-data`): IVM datasets, expert demonstrations, expert success."""
