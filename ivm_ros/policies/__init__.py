"""Action predictors behind one interface (reset(instruction), act(observation) -> action chunk)."""
