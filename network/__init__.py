"""Brian2 networks of the model: the memory object, devices, recall runs. Brian2 is imported here only."""
