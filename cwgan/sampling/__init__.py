"""Images out of a trained generator: `cwgan.sample`, interpolation grids, the SavedModel
export, sample grids, and the generator shipped with cwgan (`pretrained/`)."""
