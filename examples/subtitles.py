"""Speak a short script with the bundled Piper voice, transcribe it with the bundled Whisper model, and write
subtitles. Runs offline: `python examples/subtitles.py [out-folder]`."""

import sys
from pathlib import Path

import genai_sdk as genai

folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
folder.mkdir(parents=True, exist_ok=True)

client = genai.Client()  # whisper:tiny.en and piper:en_US-joe-medium, both bundled with the 'local' extra
speech = client.speech.synthesize("Welcome to the show. Tonight we talk about avocados. And couches.")
speech.audio.save(folder / "script.wav")

transcript = client.speech.transcribe(folder / "script.wav", word_timestamps=True)
(folder / "script.srt").write_text(transcript.to_srt(), encoding="utf-8")
(folder / "script.vtt").write_text(transcript.to_vtt(), encoding="utf-8")
print(f"{transcript.duration:.1f} s, {len(transcript.segments)} segments: {transcript.text}")
