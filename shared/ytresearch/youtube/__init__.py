"""YouTube adapters: URL parsing, transcripts (youtube-transcript-api) and metadata (oEmbed / Data API).

Importing this package pulls in no HTTP or YouTube library: the adapters import
youtube-transcript-api, requests and httpx on first use, so the CRUD Lambda (which only parses
URLs) keeps a small cold start.
"""

from ytresearch.youtube.metadata import (
    NullMetadataSource,
    OEmbedMetadataSource,
    SampleMetadataSource,
)
from ytresearch.youtube.transcripts import (
    TRANSCRIPT_ERROR_CODES,
    SampleTranscriptSource,
    YouTubeTranscriptSource,
    default_samples_dir,
)
from ytresearch.youtube.urls import canonical_url, is_video_id, parse_video_id

__all__ = [
    "TRANSCRIPT_ERROR_CODES",
    "NullMetadataSource",
    "OEmbedMetadataSource",
    "SampleMetadataSource",
    "SampleTranscriptSource",
    "YouTubeTranscriptSource",
    "canonical_url",
    "default_samples_dir",
    "is_video_id",
    "parse_video_id",
]
