"""Brian2 networks of the model: builder, devices, recall runs. Brian2 is imported here only."""
