"""YouTube adapters: URL parsing, transcripts (youtube-transcript-api), metadata (oEmbed / Data API)
and finding videos (Data API search, playlists and channels; the samples' catalog offline).

Importing this package pulls in no HTTP or YouTube library: the adapters import
youtube-transcript-api, requests and httpx on first use, so the CRUD Lambda (which only parses
URLs) keeps a small cold start.
"""

from ytresearch.youtube.discovery import (
    DISCOVERY_ERROR_CODES,
    SampleCatalogDiscovery,
    YouTubeDataDiscovery,
    build_discovery,
    parse_list_url,
)
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
    "DISCOVERY_ERROR_CODES",
    "TRANSCRIPT_ERROR_CODES",
    "NullMetadataSource",
    "OEmbedMetadataSource",
    "SampleCatalogDiscovery",
    "SampleMetadataSource",
    "SampleTranscriptSource",
    "YouTubeDataDiscovery",
    "YouTubeTranscriptSource",
    "build_discovery",
    "canonical_url",
    "default_samples_dir",
    "is_video_id",
    "parse_list_url",
    "parse_video_id",
]
