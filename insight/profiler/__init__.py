"""Profiles: captured with step markers, found under a logdir, converted with xprof.

- `capture`: capturing a profile and finding, opening and converting the ones on disk
  (`insight.capture_profile`, `insight.find_profiles`);
- `steps`: the inference and training steps a capture times (on a copy of the model);
- `tables`: xprof's tool outputs as tidy tables (steps, timeline events, ops, memory);
- `breakdown`: the step-time breakdown, xprof's or, for profiles without step markers
  (`keras.callbacks.TensorBoard(profile_batch=...)`), inferred from the timeline;
- `timeline`: the events of a time window, small ones merged per pixel.
"""

__all__: list[str] = []  # the public names are `insight`'s; import the modules
