"""Plans: a closed set of step kinds, computed purely from (desired, observed), saved and rendered as data."""
