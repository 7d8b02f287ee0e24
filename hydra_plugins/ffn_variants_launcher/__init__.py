"""hydra/launcher=gpus and hydra/launcher=parallel: a fresh process per job, one device each."""
