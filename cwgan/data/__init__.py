"""Images in: MNIST-like data sets, IDX files, folders of class folders, streams addressable
by step, the bundled MNIST subset and a demo folder of coloured digits."""
