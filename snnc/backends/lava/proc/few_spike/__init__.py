"""Graded few-spike populations: few-spike neurons and AMOS circuits."""
