"""Four images of an avocado couch, saved as avocado_couch0.jpg ... avocado_couch3.jpg.

Run against the real API with OPENAI_API_KEY set, or against the emulator:
    eval "$(genai emulator &)"   # or: genai emulator, then export what it prints
"""

import genai_sdk as genai

client = genai.Client(image="openai:dall-e-2")
result = client.images.generate("an avocado couch", n=4, size="512x512")
for i, image in enumerate(result.images):
    image.save(f"avocado_couch{i}.jpg")
print(f"{len(result.images)} images from {result.model}, cost {result.cost}")
