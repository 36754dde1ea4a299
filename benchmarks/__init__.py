"""Speed measured as ratios in one run (ours vs a peer, ours vs the forward/backward floor)."""
