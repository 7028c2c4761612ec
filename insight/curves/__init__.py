"""Training curves from any log: TensorBoard event files, CSVLogger CSVs, Keras histories.

- `logdir`: reading a logdir into tidy frames (`run, tag, step, wall_time, value`),
  incrementally (`insight.read_scalars`, `Logdir`);
- `files`: the logs that are tables (a `CSVLogger` CSV, a Keras history as JSON);
- `splits`: which series is train and which validation (`val_loss`, `train/`, ...);
- `tfevents`: the event-file reader (no TensorFlow), over `_tfrecord` (framing and CRCs)
  and `_event_decode` (payloads), fed by `sources` (a local file, or ranges of a remote
  object);
- `remote`: logdirs in `s3://` / `gs://`: one listing kept `LISTING_TTL` seconds (its stamp
  keys the app's caches), the appended ranges of grown files fetched concurrently;
- `analysis`: smoothing, extreme-keeping downsampling, best step, overfitting onset and the
  train/validation verdict (overfitting, a large gap, no sign, too few epochs to tell).

Example:

>>> from insight.curves import read_scalars
>>> read_scalars("sample_models/digits_cnn/logs").columns.tolist()  # doctest: +SKIP
['run', 'tag', 'step', 'wall_time', 'value']
"""

from insight.curves.logdir import Logdir, read_histograms, read_scalars

__all__ = ["Logdir", "read_scalars", "read_histograms"]
