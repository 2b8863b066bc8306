"""Brian2 networks of the model on a chosen device: builder, devices, monitors, stimulus."""
