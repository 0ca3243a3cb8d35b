"""Binary-spike populations stepping with their input: IF and single-spike neurons."""
