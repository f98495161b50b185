"""RDS PostgreSQL 16 in isolated subnets, with generated credentials in Secrets Manager (rotated),
encrypted storage, backups, and an optional RDS Proxy."""

from __future__ import annotations

from aws_cdk import Duration, Names, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge, skip_checkov

DATABASE_PORT = 5432
MASTER_USERNAME = "ytr_admin"
POSTGRES_MAJOR_VERSION = "16"
POSTGRES_VERSION = rds.PostgresEngineVersion.of(POSTGRES_MAJOR_VERSION, POSTGRES_MAJOR_VERSION)
# The proxy may use this share of max_connections; the rest stays for the rotation function (which
# connects to the instance) and an operator's session.
PROXY_MAX_CONNECTIONS_PERCENT = 90
_MEMORY_GIB_BY_SIZE = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}


def estimated_max_connections(instance_type: str) -> int:
    """RDS PostgreSQL's default max_connections, LEAST(DBInstanceClassMemory/9531392, 5000), for an
    instance class like ``t4g.micro`` (DBInstanceClassMemory is about 80% of the class's memory
    once the OS and RDS take theirs: db.t4g.micro gets about 85-90)."""
    size = instance_type.rsplit(".", 1)[-1]
    memory_gib = _MEMORY_GIB_BY_SIZE.get(size, 8)
    return min(int(memory_gib * 1024**3 * 0.8 / 9_531_392), 5000)


class Database(Construct):
    """Exposes ``instance``, ``secret`` (JSON: host, port, username, password, dbname...),
    ``security_group``, ``proxy`` (or None) and ``endpoint_host`` (the proxy's when present).

    Clients are let in with :meth:`allow_from`; nothing else reaches port 5432.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        database_subnets: ec2.SubnetSelection,
        rotation_subnets: ec2.SubnetSelection,
        database_name: str,
        instance_type: str,
        allocated_storage_gib: int,
        max_allocated_storage_gib: int,
        backup_retention_days: int,
        multi_az: bool,
        deletion_protection: bool,
        rotation_days: int,
        with_proxy: bool,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.database_name = database_name
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="PostgreSQL: ingress only from the application security groups",
            allow_all_outbound=False,
        )
        # Pinned by major version only: RDS picks the current 16.x at creation and the automatic
        # minor upgrades keep it patched, so no deploy ever fights AWS over a minor version.
        engine = rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="TLS-only connections",
            parameters={"rds.force_ssl": "1"},
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=engine,
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=database_subnets,
            security_groups=[self.security_group],
            port=DATABASE_PORT,
            credentials=rds.Credentials.from_generated_secret(MASTER_USERNAME),
            database_name=database_name,
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib,
            storage_encrypted=True,
            multi_az=multi_az,
            publicly_accessible=False,
            backup_retention=Duration.days(backup_retention_days),
            copy_tags_to_snapshot=True,
            delete_automated_backups=not deletion_protection,
            deletion_protection=deletion_protection,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            # Deleting the stack (or replacing the instance) leaves a final snapshot behind.
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        secret = self.instance.secret
        assert secret is not None  # generated credentials always come with a secret
        self.secret: secretsmanager.ISecret = secret

        self.rotation = self.instance.add_rotation_single_user(
            automatically_after=Duration.days(rotation_days),
            vpc_subnets=rotation_subnets,  # needs the Secrets Manager API, through NAT
        )
        # The rotation function comes from the Serverless Application Repository with a name CDK
        # derives from the construct path; create its log group here so it has a retention.
        rotation_function_name = Names.unique_id(self.rotation)[-64:]
        self.rotation_log_group = logs.LogGroup(
            self,
            "RotationLogs",
            log_group_name=f"/aws/lambda/{rotation_function_name}",
            retention=log_retention,
            removal_policy=log_removal_policy,
        )

        self.proxy: rds.DatabaseProxy | None = None
        self.proxy_security_group: ec2.SecurityGroup | None = None
        if with_proxy:
            self.proxy_security_group = ec2.SecurityGroup(
                self,
                "ProxySecurityGroup",
                vpc=vpc,
                description="RDS Proxy: ingress only from the application security groups",
                allow_all_outbound=False,
            )
            self.proxy = self.instance.add_proxy(
                "Proxy",
                vpc=vpc,
                vpc_subnets=database_subnets,
                secrets=[self.secret],
                security_groups=[self.proxy_security_group],
                require_tls=True,
                debug_logging=False,
                max_connections_percent=PROXY_MAX_CONNECTIONS_PERCENT,
            )
            self.instance.connections.allow_default_port_from(
                self.proxy_security_group, "RDS Proxy to PostgreSQL"
            )
            self.proxy_security_group.add_egress_rule(
                self.security_group,
                ec2.Port.tcp(DATABASE_PORT),
                "RDS Proxy to PostgreSQL",
            )

        self._acknowledge(multi_az=multi_az, deletion_protection=deletion_protection)

    @property
    def endpoint_host(self) -> str:
        """Where clients connect: the proxy when there is one, else the instance."""
        if self.proxy is not None:
            return self.proxy.endpoint
        return self.instance.db_instance_endpoint_address

    @property
    def instance_host(self) -> str:
        """The instance itself, past any proxy (for sessions a proxy cannot carry: LISTEN)."""
        return self.instance.db_instance_endpoint_address

    def allow_direct_from(self, peer: ec2.ISecurityGroup, description: str) -> None:
        """Let ``peer`` connect on 5432 to the instance itself, past the proxy."""
        self.security_group.add_ingress_rule(peer, ec2.Port.tcp(DATABASE_PORT), description)

    def allow_from(self, peer: ec2.ISecurityGroup, description: str) -> None:
        """Let ``peer`` connect on 5432 (to the proxy when there is one)."""
        port = ec2.Port.tcp(DATABASE_PORT)
        if self.proxy_security_group is not None:
            self.proxy_security_group.add_ingress_rule(peer, port, description)
        else:
            self.security_group.add_ingress_rule(peer, port, description)

    def _acknowledge(self, *, multi_az: bool, deletion_protection: bool) -> None:
        skip_checkov(
            self.instance,
            "CKV_AWS_118",
            "The standard one-minute RDS metrics feed the alarms (CPU, credits, memory, connections, "
            "storage); OS-level enhanced monitoring needs its own role and log ingestion, so it is left "
            "for an operator to turn on while debugging.",
        )
        skip_checkov(
            self.instance,
            "CKV_AWS_161",
            "The application signs in with a generated password from Secrets Manager, rotated every "
            "30 days; IAM database tokens would need a 15-minute refresh in every pool and the proxy.",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-RDS11",
            "The default PostgreSQL port is kept: the instance sits in isolated subnets and its "
            "security group admits only the application's security groups, so a non-standard "
            "port would add no protection and would break tooling defaults.",
        )
        if not multi_az:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS3",
                "Single-AZ by default to keep the small deployment cheap (Multi-AZ doubles the "
                "instance cost); daily backups allow restore. Set -c db_multi_az=true for prod.",
                checkov="CKV_AWS_157",
            )
        if not deletion_protection:
            acknowledge(
                self.instance,
                "AwsSolutions-RDS10",
                "Deletion protection is on for prod and off for dev/staging so that "
                "`cdk destroy` can remove throwaway environments; the removal policy still "
                "takes a final snapshot. Override with -c db_deletion_protection=true.",
            )
