"""A tier behind the bottleneck is quoted at its capacity, not at a flat secant's extrapolation.

Uploads go through an ingestion queue whose consumers take batches of 4 and call a slow OCR
service. The queue saturates first; near its saturation the OCR's share held barely rises
between the search's two highest points (the batches fill up, and noise), and a secant through
them put the OCR's saturation anywhere: 101/s and 85/s for a tier whose six workers of 400 ms
carry 15 calls a second, 60 uploads a second in full batches. Forecast (one replication by
default) dated the OCR's saturation from such figures: 8,911/s on a platform whose OCR
saturates near 1,100/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import capsim
from capsim.analysis.saturate import find_saturation

PIPELINE = """\
name: pipeline
seed: {seed}
simulation: {{duration: 60s, replications: 1}}
traffic:
  upload: {{entry: ingest, rate: 20/s}}
tiers:
  ingest:
    type: queue
    consumers: 4
    service_time: {{dist: exponential, mean: 20ms}}
    batch: {{size: 4, linger: 100ms}}
    calls: [ocr]
  ocr:
    instances: 3
    concurrency: 2
    blocking: false
    service_time: {{dist: lognormal, mean: 400ms, cv: 2.0}}
"""
#: 6 workers / 400 ms = 15 OCR calls a second; a full batch carries 4 uploads.
OCR_CAPACITY = 6 / 0.400 * 4


@pytest.mark.parametrize("seed", [2, 5])
def test_the_ocr_behind_a_batching_queue_saturates_near_its_capacity(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(seed=seed))
    model = capsim.build_model(capsim.load_scenario(path))
    result = find_saturation(model, capsim_version=capsim.__version__, replications=3)
    assert result["bottleneck"] == "ingest"
    ocr = result["tiers"]["ocr"]
    assert ocr["max_rate_analytic"] == pytest.approx(OCR_CAPACITY)
    # Partial batches at lighter loads only cost more calls per upload, so the measured share
    # held can put the saturation below the capacity, never far above it; 25% is the noise of
    # a heavy-tailed (cv 2) service over a search point. (With one replication, seed 5 read
    # 77.2/s, 29% above, for one of three seed shifts; three replications keep within it.)
    assert ocr["max_rate"] <= 1.25 * OCR_CAPACITY
    assert ocr["max_rate_low"] <= ocr["max_rate"]
