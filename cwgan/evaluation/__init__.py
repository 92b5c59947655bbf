"""Sample quality: the judge (a classifier cwgan trains on held-out real images) and its
measures, their validation, and the progress report."""
