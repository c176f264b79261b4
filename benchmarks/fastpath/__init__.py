"""The fast data path: tensors instead of per-sample loaders (batches, replay memories, gather), lean plugin dispatch, and the template subclass that uses them (template.fast_template)."""
