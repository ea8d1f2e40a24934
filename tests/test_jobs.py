"""Long jobs that survive their process: recorded beside the ledger before waiting, listed, resumed from another
process (collected and charged exactly once, settling the dead call's reservation) and cancelled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

WAN = "replicate:wan-video/wan-2.2-t2v-fast"

_WORKER = textwrap.dedent(
    """
    import sys
    import genai_sdk as genai

    client = genai.Client(ledger=sys.argv[1], video=sys.argv[2], policy="off", timeout=300)
    settings = {"seconds": 2, "fps": 16} if sys.argv[2].startswith("replicate:") else {"seconds": 4}
    client.videos.generate("a panda playing guitar", **settings)
    print("finished, which the test did not want")
    """
)


def _started_then_killed(ledger: str, emulator: Emulator, job_seconds: float, model: str = WAN) -> genai.Client:
    """A process starts a video, is killed (SIGKILL: no clean-up) once its job is recorded; a client of the same
    ledger is returned."""
    emulator.replicate.job_seconds, emulator.replicate.max_wait = job_seconds, 0
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, ledger, model], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = genai.Client(ledger=ledger, video=model, policy="off")
    try:
        deadline = time.monotonic() + 60
        while not client.jobs.list(status="running"):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the job was never recorded"
            time.sleep(0.05)
    finally:
        worker.kill()
        worker.communicate(timeout=30)
    return client


def test_a_job_of_a_killed_process_is_resumed_and_charged_once(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _started_then_killed(f"sqlite:///{tmp_path / 'ledger.db'}", genai_emulator, job_seconds=2.0)
    [job] = client.jobs.list()
    assert (job.status, job.model, job.operation) == ("running", WAN, "videos.generate")
    assert client.credits.reserved() == job.credits > 0  # the dead call's reservation, still held
    result = client.jobs.resume(job.id)
    assert isinstance(result, genai.VideoResult) and result.video.duration == pytest.approx(2.0)
    assert result.model == WAN and result.request_ids == [job.id]
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 1 and charges[0].request_id == job.request_id and -charges[0].credits == result.cost.credits
    assert client.credits.reserved() == 0 and client.jobs.get(job.id).status == "done"
    with pytest.raises(genai.InvalidRequestError, match="is done .*collected and charged"):
        client.jobs.resume(job.id)
    assert genai_emulator.calls("replicate.predictions.cancel") == []
    assert len(genai_emulator.calls("replicate.predictions.create")) == 1  # nothing was made twice


def test_a_job_of_a_killed_process_is_cancelled(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _started_then_killed(f"sqlite:///{tmp_path / 'ledger.db'}", genai_emulator, job_seconds=60.0)
    [job] = client.jobs.list(status="running")
    cancelled = client.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and len(genai_emulator.calls("replicate.predictions.cancel")) == 1
    assert client.credits.reserved() == 0 and client.credits.history() == []
    assert genai_emulator.replicate.status_counts().get("canceled") == 1
    with pytest.raises(genai.InvalidRequestError, match="is cancelled"):
        client.jobs.cancel(job.id)


def test_the_command_line_lists_and_resumes_jobs(
    genai_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genai_sdk.cli import main

    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    job = _started_then_killed(ledger, genai_emulator, job_seconds=1.0).jobs.list()[0]
    assert main(["jobs", "--ledger", ledger, "list"]) == 0
    listed = capsys.readouterr().out
    assert job.id in listed and "running" in listed and WAN in listed
    assert main(["jobs", "--ledger", ledger, "resume", job.id, "-o", "panda.mp4"]) == 0
    assert capsys.readouterr().out.split() == ["panda.mp4"]
    assert genai.Video.from_path(tmp_path / "panda.mp4").media_type == "video/mp4"
    assert main(["jobs", "--ledger", ledger, "list", "--status", "done", "--json"]) == 0
    import json

    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [job.id]
    assert main(["jobs", "--ledger", ledger, "cancel", "nope"]) == 2
    assert "no job 'nope'" in capsys.readouterr().err


def test_calls_that_end_leave_their_jobs_done_or_failed(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://", video=WAN, policy="off")
    result = client.videos.generate("a panda", seconds=2, fps=16)
    [job] = client.jobs.list()
    assert job.status == "done" and job.id == result.request_ids[0] and job.request["prompt"] == "a panda"
    blocked = genai_emulator.blocked_words[0]
    with pytest.raises(genai.ContentPolicyError):
        client.images.generate(f"a {blocked}", model="replicate:black-forest-labs/flux-schnell")
    failed = client.jobs.list(status="failed")
    assert len(failed) == 1 and failed[0].operation == "images.generate" and "refused" in failed[0].note
    with pytest.raises(genai.InvalidRequestError, match="status='lost'"):
        client.jobs.list(status="lost")
    with pytest.raises(genai.InvalidRequestError, match="no job 'missing'"):
        client.jobs.get("missing")


def test_a_finished_job_cannot_be_cancelled_only_collected(genai_emulator: Emulator, tmp_path: Path) -> None:
    client = _started_then_killed(f"sqlite:///{tmp_path / 'ledger.db'}", genai_emulator, job_seconds=0.5)
    [job] = client.jobs.list()
    time.sleep(1.0)  # the prediction finishes on the backend meanwhile
    with pytest.raises(genai.InvalidRequestError, match="finished before it could be cancelled"):
        client.jobs.cancel(job.id)
    assert client.jobs.resume(job.id).cost.credits > Decimal(0)


def test_async_clients_record_and_list_jobs(genai_emulator: Emulator) -> None:
    async def main() -> list[genai.Job]:
        async with genai.AsyncClient(ledger="memory://", video=WAN, policy="off") as aclient:
            await aclient.videos.generate("a panda", seconds=2, fps=16)
            return await aclient.jobs.list()

    [job] = asyncio.run(main())
    assert job.status == "done" and job.operation == "videos.generate"


def test_a_veo_operation_of_a_killed_process_is_resumed_not_cancelled(genai_emulator: Emulator, tmp_path: Path) -> None:
    google = genai_emulator.api("google")
    google.polls_to_finish = 10_000  # type: ignore[attr-defined]  # it does not finish while the first process waits
    client = _started_then_killed(f"sqlite:///{tmp_path / 'ledger.db'}", genai_emulator, 0, "google:veo-3.1-generate-001")
    [job] = client.jobs.list(status="running")
    assert job.id.startswith("models/veo-3.1-generate-001/operations/")
    with pytest.raises(genai.UnsupportedError, match="google cannot cancel .* collect it with client.jobs.resume"):
        client.jobs.cancel(job.id)
    for operation in google.operations.values():  # type: ignore[attr-defined]
        operation.polls_left = 1  # it finishes on the next look
    result = client.jobs.resume(job.id)
    assert isinstance(result, genai.VideoResult) and result.request_ids == [job.id]
    assert result.cost.usd == Decimal("1.60")  # Veo 3.1: 0.40 a second, four seconds, charged once
    assert [e.kind for e in client.credits.history()] == ["charge"] and client.credits.reserved() == 0


def test_a_job_is_resumed_through_a_postgres_ledger(genai_emulator: Emulator, postgres_url: str) -> None:
    client = _started_then_killed(postgres_url, genai_emulator, job_seconds=1.0)
    [job] = client.jobs.list(status="running")
    assert client.credits.reserved() == job.credits
    result = client.jobs.resume(job.id)
    assert isinstance(result, genai.VideoResult) and client.credits.reserved() == 0
    assert [e.kind for e in client.credits.history()] == ["charge"] and client.jobs.get(job.id).status == "done"
    client.close()


def test_a_resume_that_gives_up_leaves_the_job_running_for_another(genai_emulator: Emulator, tmp_path: Path) -> None:
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    [job] = _started_then_killed(ledger, genai_emulator, job_seconds=4.0).jobs.list()
    impatient = genai.Client(ledger=ledger, video=WAN, policy="off", timeout=0.5, max_retries=0)
    with pytest.raises(genai.ProviderUnavailableError, match="did not finish within the call's timeout"):
        impatient.jobs.resume(job.id)
    assert impatient.jobs.get(job.id).status == "running" and impatient.credits.reserved() == job.credits
    assert genai_emulator.calls("replicate.predictions.cancel") == []  # a resume never stops the job
    result = genai.Client(ledger=ledger, video=WAN, policy="off").jobs.resume(job.id)
    assert isinstance(result, genai.VideoResult) and impatient.credits.reserved() == 0


def test_a_call_split_over_several_jobs_is_charged_once_whoever_collects_it(
    genai_emulator: Emulator, tmp_path: Path
) -> None:
    """A live call makes two predictions (five pictures, four a prediction); another process resumes one of its jobs
    while it waits. Whoever commits first charges the call; the other adds nothing."""
    import threading

    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 1.5, 0
    live = genai.Client(ledger=ledger, image="replicate:black-forest-labs/flux-schnell", policy="off")
    done: list[genai.ImageResult] = []
    worker = threading.Thread(target=lambda: done.append(live.images.generate("five mugs", n=5)))
    worker.start()
    other = genai.Client(ledger=ledger, image="replicate:black-forest-labs/flux-schnell", policy="off")
    deadline = time.monotonic() + 30
    while len(other.jobs.list(status="running")) < 2:
        assert time.monotonic() < deadline, other.jobs.list()
        time.sleep(0.02)
    resumed = other.jobs.resume(other.jobs.list(status="running")[0].id)
    worker.join(timeout=60)
    assert isinstance(resumed, genai.ImageResult) and len(resumed.images) == 5 and len(done) == 1 and len(done[0].images) == 5
    charges = [e for e in other.credits.history() if e.kind in ("charge", "spent")]
    assert len(charges) == 1 and -charges[0].credits == done[0].cost.credits
    assert other.credits.reserved() == 0


def test_the_command_line_names_a_veo_video_from_its_operation(
    genai_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genai_sdk.cli import main

    google = genai_emulator.api("google")
    google.polls_to_finish = 10_000  # type: ignore[attr-defined]
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    [job] = _started_then_killed(ledger, genai_emulator, 0, "google:veo-3.1-generate-001").jobs.list()
    for operation in google.operations.values():  # type: ignore[attr-defined]
        operation.polls_left = 1
    assert main(["jobs", "--ledger", ledger, "resume", job.id, "-o", "missing/x.mp4"]) == 2  # checked before paying
    assert "folder missing does not exist" in capsys.readouterr().err
    assert genai.Client(ledger=ledger).credits.history() == []
    assert main(["jobs", "--ledger", ledger, "resume", job.id]) == 0
    name = job.id.rsplit("/", 1)[-1] + ".mp4"
    assert capsys.readouterr().out.split() == [name] and (tmp_path / name).is_file()
