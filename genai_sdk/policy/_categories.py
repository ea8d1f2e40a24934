"""The categories of the content policy: OpenAI's moderation categories, plus two that DALL-E enforced (public
figures, deceptive imagery). The most specific come first, and a decision names its categories in this order."""

CATEGORIES = (
    "sexual/minors",
    "sexual",
    "violence/graphic",
    "violence",
    "self-harm",
    "hate",
    "harassment",
    "illicit",
    "public-figures",
    "deceptive",
)
