"""Training pipelines on simulator data: lite masks (`sim-train-lite`) and the policy (`sim-train-policy`)."""
