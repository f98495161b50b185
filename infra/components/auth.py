"""Sign-in: a Cognito user pool, its API scope, the app client and the hosted UI domain.

Users sign in with their email address. The app client has no secret (it is used by the CLI and
by browsers): ``USER_PASSWORD_AUTH`` and SRP for the CLI, the authorization code flow for
browsers through the hosted UI, with the callback URLs from CDK context.

The API requires access tokens that carry the ``ytresearch/api`` scope. Cognito puts custom
scopes only into tokens from its OAuth endpoints; tokens from ``InitiateAuth`` (the CLI) carry
just ``aws.cognito.signin.user.admin``. A small pre-token-generation trigger (event version 2,
which needs the Essentials or Plus feature plan) therefore adds the API scope to every access
token the pool issues. The pool has a single app client, and both the API Gateway authorizer and
the application check the token's ``client_id`` too, so this grants nothing to other clients.
"""

from __future__ import annotations

from collections.abc import Sequence

import jsii
from aws_cdk import Aws, Duration, IStableListProducer, Lazy, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge, skip_checkov

# checkov's Lambda checks on the token trigger, which only edits the event Cognito hands it.
TRIGGER_CHECKOV_REASONS = {
    "CKV_AWS_117": "The token trigger reaches nothing (no database, no AWS API, no internet); a VPC "
    "attachment would only add network interfaces and cold-start time to every sign-in.",
    "CKV_AWS_116": "Cognito invokes the token trigger synchronously and fails the sign-in when it "
    "fails; there is no asynchronous event a dead-letter queue could keep.",
    "CKV_AWS_115": "Sign-ins are rare and short (128 MB, milliseconds); reserved concurrency would "
    "take capacity from the account and could only refuse sign-ins at a peak.",
    "CKV_AWS_173": "The trigger's only environment variable is the public API scope name; Lambda "
    "encrypts function configuration at rest with its own key.",
}

RESOURCE_SERVER_ID = "ytresearch"
API_SCOPE_NAME = "api"
API_SCOPE = f"{RESOURCE_SERVER_ID}/{API_SCOPE_NAME}"
PASSWORD_MIN_LENGTH = 12
TRIGGER_RUNTIME = lambda_.Runtime.PYTHON_3_14  # no dependencies, so the newest runtime
_BASIC_EXECUTION_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

# Inline, so the trigger needs no bundle: it only edits the event Cognito hands it.
TRIGGER_CODE = """
import os

SCOPE = os.environ["API_SCOPE"]


def handler(event, context):
    # Pre token generation, event version 2: add the API scope to the access token.
    response = event.get("response") or {}
    details = response.get("claimsAndScopeOverrideDetails") or {}
    access = details.get("accessTokenGeneration") or {}
    scopes = list(access.get("scopesToAdd") or [])
    if SCOPE not in scopes:
        scopes.append(SCOPE)
    access["scopesToAdd"] = scopes
    details["accessTokenGeneration"] = access
    response["claimsAndScopeOverrideDetails"] = details
    event["response"] = response
    return event
"""


@jsii.implements(IStableListProducer)
class _Urls:
    """A URL list that may still grow after the client is defined (rendered at synth)."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)

    def produce(self) -> list[str]:
        return list(dict.fromkeys(self.urls))


class UserAuth(Construct):
    """Exposes ``user_pool``, ``client``, ``resource_server``, ``domain``, ``token_trigger``,
    ``issuer`` (the ``iss`` of its tokens and the base of its JWKS URL), ``api_scope`` and
    ``hosted_ui_url``.

    :meth:`add_page_url` adds a deployed page (the streaming service's HTTPS URL, known only once
    its CloudFront distribution exists) to the callback and sign-out URLs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        callback_urls: Sequence[str],
        logout_urls: Sequence[str],
        domain_prefix: str,
        threat_protection: bool,
        deletion_protection: bool,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api_scope = API_SCOPE
        self._callback_urls = _Urls(callback_urls)
        self._logout_urls = _Urls(logout_urls)
        self.token_trigger_logs = logs.LogGroup(
            self, "TokenTriggerLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.token_trigger = lambda_.Function(
            self,
            "TokenTrigger",
            description="Adds the API scope to every access token of the user pool",
            runtime=TRIGGER_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(TRIGGER_CODE),
            memory_size=128,
            timeout=Duration.seconds(5),  # Cognito waits at most 5 s for a trigger
            environment={"API_SCOPE": API_SCOPE},
            log_group=self.token_trigger_logs,
            logging_format=lambda_.LoggingFormat.JSON,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        acknowledge(
            self.token_trigger,
            f"AwsSolutions-IAM4[Policy::{_BASIC_EXECUTION_POLICY}]",
            "The token trigger's role has only AWSLambdaBasicExecutionRole, the AWS-maintained "
            "minimum that lets it write its own CloudWatch logs; it calls no AWS API.",
        )
        for check_id, reason in TRIGGER_CHECKOV_REASONS.items():
            skip_checkov(self.token_trigger, check_id, reason)

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            # Closed pool: an admin invites users (aws cognito-idp admin-create-user).
            self_sign_up_enabled=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),  # no SMS: no SNS role, no cost
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Essentials is the least that runs version 2 token triggers; Plus adds threat protection.
            feature_plan=cognito.FeaturePlan.PLUS if threat_protection else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=(
                cognito.StandardThreatProtectionMode.FULL_FUNCTION if threat_protection else None
            ),
            deletion_protection=deletion_protection,
            removal_policy=removal_policy,
        )
        self.user_pool.add_trigger(
            cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
            self.token_trigger,
            cognito.LambdaVersion.V2_0,
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional by design: every user can turn on an authenticator app (TOTP), which "
            "`ytr login --mfa-code` and the hosted UI support, but invited users must be able to "
            "sign in from the CLI before they have set one up.",
        )
        if not threat_protection:
            acknowledge(
                self.user_pool,
                "AwsSolutions-COG8",
                "The Plus feature plan (threat protection: compromised-credential and adaptive "
                "authentication checks) is billed per monthly active user with no free tier, so it "
                "is off by default; -c cognito_threat_protection=true turns it on in full-function mode.",
            )

        scope_spec = cognito.ResourceServerScope(
            scope_name=API_SCOPE_NAME, scope_description="Use the YouTube Research Tool API"
        )
        self.resource_server = self.user_pool.add_resource_server(
            "ResourceServer",
            identifier=RESOURCE_SERVER_ID,
            user_pool_resource_server_name="YouTube Research Tool API",
            scopes=[scope_spec],
        )
        api_scope = cognito.OAuthScope.resource_server(self.resource_server, scope_spec)
        self.client = self.user_pool.add_client(
            "AppClient",
            generate_secret=False,  # public client: the CLI and browsers cannot keep a secret
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, api_scope],
                callback_urls=Lazy.list(self._callback_urls),
                logout_urls=Lazy.list(self._logout_urls),
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(30),
        )
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=domain_prefix)
        )
        self.issuer = self.user_pool.user_pool_provider_url
        self.hosted_ui_url = self.domain.base_url()

    def add_page_url(self, url: str) -> None:
        """Let the hosted UI send browsers back to ``url`` (https://...) after sign-in and sign-out."""
        page = url.rstrip("/") + "/"
        self._callback_urls.urls.append(page)
        self._logout_urls.urls.append(page)


def default_domain_prefix(environment: str, account: str | None) -> str:
    """A hosted UI prefix unique per account and environment (prefixes are global in a region)."""
    return f"ytresearch-{environment}-{account or Aws.ACCOUNT_ID}"
