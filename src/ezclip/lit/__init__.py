"""Lightning wrappers: the LightningModule and the video DataModule."""
