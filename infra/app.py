"""CDK entry point: ``python -m infra.app`` (cdk.json runs it from the repo root).

    npx cdk synth                      # all settings from cdk.json
    npx cdk deploy -c environment=prod -c certificate_arn=arn:aws:acm:...

See infra/config.py for every context key and the README, "Deploy to AWS" for the walkthrough.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Tags, Validations

from infra.config import InfraConfig
from infra.stack import YtResearchStack

PROJECT_TAG = "youtube-research-tool"
# CDK treats these as taggable, but their CloudFormation schema has no Tags property.
UNTAGGABLE_RESOURCE_TYPES = ["AWS::RDS::DBProxyTargetGroup"]


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> App:
    """Build the app: one stack per invocation, named ``YtResearch-<environment>``.

    ``context`` adds to (and is overridden by) cdk.json / ``-c`` values when run by the CLI;
    tests pass the cdk.json context themselves. ``environ`` defaults to ``os.environ`` (read for
    ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION`` only).
    """
    app = App(context=dict(context or {}), outdir=outdir)
    config = InfraConfig.from_context(app.node.try_get_context, os.environ if environ is None else environ)
    stack = YtResearchStack(
        app,
        config.stack_name,
        config=config,
        env=Environment(account=config.account, region=config.region),
        description=f"YouTube Research Tool ({config.environment})",
        termination_protection=config.is_production,
    )
    for key, value in {
        "project": PROJECT_TAG,
        "environment": config.environment,
        "managed-by": "aws-cdk",
        **config.extra_tags,
    }.items():
        Tags.of(app).add(key, value, exclude_resource_types=UNTAGGABLE_RESOURCE_TYPES)
    del stack
    if config.nag:
        from cdk_nag import AwsSolutionsChecks  # a dev dependency; only needed when checking

        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
