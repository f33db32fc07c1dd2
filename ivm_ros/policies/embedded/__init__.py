"""The embedded visuomotor policy (JAX/Flax): network, checkpoint, data, training and the Policy that runs it."""
