"""CloudFormation custom resource (via the CDK Provider framework): run Alembic migrations.

Create and Update run ``upgrade_to_head()`` and report the head revision as ``Revision``. Delete
does nothing: removing the stack (or this resource) must never drop the schema or its data.
The physical id never changes, so an Update is never followed by a Delete of the "old" resource.
Errors propagate; the framework reports them to CloudFormation, which rolls the deploy back
before the new code serves traffic.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

PHYSICAL_RESOURCE_ID = "ytresearch-schema"

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_type = event.get("RequestType")
    if request_type == "Delete":
        logger.info("delete requested; the schema is left in place")
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_RESOURCE_ID)}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unknown custom resource request type: {request_type!r}")

    # Imported here so a Delete never needs the database stack of imports.
    from ytresearch.db.migrations import upgrade_to_head

    revision = upgrade_to_head()
    logger.info("schema at head", extra={"revision": revision, "request_type": request_type})
    return {"PhysicalResourceId": PHYSICAL_RESOURCE_ID, "Data": {"Revision": revision}}
