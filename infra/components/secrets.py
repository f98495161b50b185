"""Secrets the application reads at run time (by ARN, never by value in a template or env var)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge


class AppSecrets(Construct):
    """Exposes ``anthropic_api_key``, ``youtube_data_api_key`` and ``transcript_proxy`` (None
    unless enabled).

    Both are created with a random placeholder value; an operator sets the real value once after
    the first deploy (`aws secretsmanager put-secret-value`, see the README section Deploy to AWS).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        with_transcript_proxy: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.anthropic_api_key = secretsmanager.Secret(
            self,
            "AnthropicApiKey",
            description=(
                f"YouTube Research Tool ({environment}): Anthropic API key as a plain string. "
                "Set with put-secret-value after the first deploy."
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            self.anthropic_api_key,
            "AwsSolutions-SMG4",
            "The Anthropic API key is issued in the Anthropic console; no rotation Lambda can "
            "mint a new one, so it is rotated by hand (put-secret-value) when needed.",
        )
        self.youtube_data_api_key = secretsmanager.Secret(
            self,
            "YouTubeDataApiKey",
            description=(
                f"YouTube Research Tool ({environment}): YouTube Data API v3 key as a plain string, "
                "for the research agent's search and playlist tools. Set with put-secret-value."
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            self.youtube_data_api_key,
            "AwsSolutions-SMG4",
            "The YouTube Data API key is issued in the Google Cloud console; no rotation Lambda can "
            "mint a new one, so it is rotated by hand (put-secret-value) when needed.",
        )
        self.transcript_proxy: secretsmanager.Secret | None = None
        if with_transcript_proxy:
            self.transcript_proxy = secretsmanager.Secret(
                self,
                "TranscriptProxy",
                description=(
                    f"YouTube Research Tool ({environment}): transcript proxy settings as JSON "
                    "(README: Deploy to AWS). Set with put-secret-value after the first deploy."
                ),
                removal_policy=removal_policy,
            )
            acknowledge(
                self.transcript_proxy,
                "AwsSolutions-SMG4",
                "The transcript proxy credentials belong to an external proxy provider account; "
                "they are changed in that provider's console and copied here by hand.",
            )
