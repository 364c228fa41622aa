"""Data: Aurora PostgreSQL Serverless v2 behind an RDS Proxy, credentials in Secrets Manager.

Functions never reach the cluster directly: they connect to the proxy endpoint
(`KONTEX_DATABASE_HOST`) with the generated credentials (`KONTEX_DATABASE_SECRET_ARN`: JSON
with username, password, dbname, port), over TLS (the proxy requires it).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.config import StageConfig
from infra.network import Network

DATABASE_NAME = "kontex"
MASTER_USER = "kontex"
POSTGRES_PORT = 5432  # the proxy listens on the engine's default port
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_11


def _selection(network: Network) -> dict[str, object]:
    """The proxy's subnets (the app subnets) as ``select_subnets`` keywords."""
    selection = network.app_subnets
    return {"subnet_type": selection.subnet_type, "subnet_group_name": selection.subnet_group_name}


class Database(Construct):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, network: Network) -> None:
        super().__init__(scope, id)
        credentials = rds.DatabaseSecret(
            self, "Credentials", username=MASTER_USER, dbname=DATABASE_NAME
        )
        if config.prod:  # a final snapshot is only usable with the password it was taken with
            credentials.apply_removal_policy(RemovalPolicy.RETAIN)
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            credentials=rds.Credentials.from_secret(credentials),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[
                rds.ClusterInstance.serverless_v2(f"Reader{i + 1}", scale_with_writer=True)
                for i in range(config.db_readers)
            ],
            serverless_v2_min_capacity=config.db_min_acu,
            serverless_v2_max_capacity=config.db_max_acu,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            storage_encrypted=True,
            deletion_protection=config.prod,
            backup=rds.BackupProps(retention=Duration.days(config.backup_days)),
            removal_policy=RemovalPolicy.SNAPSHOT if config.prod else RemovalPolicy.DESTROY,
            copy_tags_to_snapshot=True,
        )
        assert self.cluster.secret is not None  # generated above
        self.secret = self.cluster.secret  # attached: the JSON gains host, port, dbname
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            vpc=network.vpc,
            vpc_subnets=network.app_subnets,
            secrets=[self.secret],
            require_tls=True,
            debug_logging=False,
            borrow_timeout=Duration.seconds(10),
        )
        self.endpoint = self.proxy.endpoint
        # the readers' own proxy endpoint (READ_ONLY: RDS Proxy spreads its connections over
        # the cluster's readers); the API's GET requests read there (docs/design.md, "Reads on
        # readers"). None without readers: everything reads from the writer.
        self.reader_endpoint: str | None = None
        if config.db_readers > 0:
            reader = rds.CfnDBProxyEndpoint(
                self,
                "ReaderEndpoint",
                db_proxy_endpoint_name=f"kontex-{config.name}-reader",
                db_proxy_name=self.proxy.db_proxy_name,
                vpc_subnet_ids=network.vpc.select_subnets(**_selection(network)).subnet_ids,
                vpc_security_group_ids=[
                    group.security_group_id for group in self.proxy.connections.security_groups
                ],
                target_role="READ_ONLY",
            )
            self.reader_endpoint = reader.attr_endpoint
        self._suppress(config)

    def allow_from(self, peer: ec2.IConnectable) -> None:
        """Open the proxy's port to ``peer`` (the functions' security group)."""
        self.proxy.connections.allow_from(
            peer, ec2.Port.tcp(POSTGRES_PORT), "Kontex functions to RDS Proxy"
        )

    def _suppress(self, config: StageConfig) -> None:
        reasons = [
            NagPackSuppression(
                id="AwsSolutions-SMG4",
                reason="The generated credentials are read by RDS Proxy and the functions; "
                "rotation is left to the operator (docs/deploy.md) until the library re-reads "
                "the secret on an authentication failure.",
            ),
            NagPackSuppression(
                id="AwsSolutions-RDS6",
                reason="Clients authenticate to RDS Proxy with the Secrets Manager credentials; "
                "the cluster is reachable only from the proxy's security group.",
            ),
        ]
        if not config.prod:
            reasons.append(
                NagPackSuppression(
                    id="AwsSolutions-RDS10",
                    reason="Deletion protection is on in prod; the dev stage is disposable.",
                )
            )
        NagSuppressions.add_resource_suppressions(self, reasons, apply_to_children=True)
