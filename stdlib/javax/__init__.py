"""Java-style shims so that the product's idioms port line by line."""
