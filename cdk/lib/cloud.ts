/**
 * The cloud side of the bundle: the S3 bucket gateways upload data to, and the alarm path.
 *
 * Data bucket: SSE-S3 encrypted, TLS only, public access blocked, versioned, server access logs to
 * a separate log bucket, lifecycle rules (tiering, expiry per fleet prefix, aborting stale
 * multipart uploads). A gateway writes only under `fleets/<fleet>/<its thing name>/` (its Token
 * Exchange role is scoped with `${credentials-iot:ThingName}`, see fleet.ts; the key layout is in
 * docs/cdk.md). SSE-S3 rather than KMS: Stream Manager's S3 export and the
 * IoT rule then need no key grants, and S3 server access logs cannot be delivered to SSE-KMS buckets
 * (awsdocs AmazonS3 enable-server-access-logging.html).
 *
 * Alarms: an IoT rule on the contract's IoT alarms topic of every site, to an SNS topic (operators'
 * e-mail, SMS, on-call) and to S3 under `alarms/<siteId>/`. `SELECT *` keeps the payload as sent:
 * Uplink may gzip batches, and binary payloads only pass through `SELECT *` (awsdocs iot
 * binary-payloads.html). Rule errors go to a CloudWatch log group.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CfnTopicRule } from 'aws-cdk-lib/aws-iot';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { mqttResource } from '../../components/lib/contract';
import { names, type FleetConfig } from './config';

export const ALARMS_PREFIX = 'alarms/';

export interface CloudProps {
  readonly fleets: readonly FleetConfig[];
}

export class CloudData extends Construct {
  readonly dataBucket: s3.Bucket;
  readonly alarmTopic: sns.Topic;
  readonly alarmRule: CfnTopicRule;

  constructor(scope: Construct, id: string, props: CloudProps) {
    super(scope, id);
    const logBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.dataBucket = new s3.Bucket(this, 'Data', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      serverAccessLogsBucket: logBucket,
      serverAccessLogsPrefix: 'data/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        { id: 'expire-old-versions', noncurrentVersionExpiration: Duration.days(30) },
        {
          id: 'tier-alarms',
          prefix: ALARMS_PREFIX,
          transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(90) }],
        },
        ...props.fleets.map((f) => ({
          id: `fleet-${f.name}`,
          prefix: names.dataPrefix(f.name),
          transitions:
            f.dataRetentionDays > 30 ? [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }] : [],
          expiration: Duration.days(f.dataRetentionDays),
        })),
      ],
    });

    // A customer managed key: SNS encryption at rest (AwsSolutions-SNS2) with a key whose policy
    // lets the IoT rule role use it; the AWS managed alias/aws/sns key cannot be granted.
    const topicKey = new kms.Key(this, 'AlarmTopicKey', { enableKeyRotation: true, description: 'dCMMS Edge alarm topic encryption' });
    this.alarmTopic = new sns.Topic(this, 'Alarms', { displayName: 'dCMMS Edge alarms', masterKey: topicKey, enforceSSL: true });

    const errors = new logs.LogGroup(this, 'AlarmRuleErrors', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });

    const ruleRole = new iam.Role(this, 'AlarmRuleRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com'),
      description: 'IoT rule dCMMS alarms: publish to the alarm topic, write alarms/ in the data bucket, log errors',
    });
    // Not topic.grantPublish(): that also grants kms:GenerateDataKey*; SNS needs exactly these two
    // (awsdocs sns sns-key-management.html, "publishers to encrypted topics").
    ruleRole.addToPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [this.alarmTopic.topicArn] }));
    ruleRole.addToPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [topicKey.keyArn] }));
    ruleRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [this.dataBucket.arnForObjects(`${ALARMS_PREFIX}*`)] }),
    );
    Validations.of(ruleRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketArnRef(this.dataBucket)}>/${ALARMS_PREFIX}*]`,
      reason: 'The alarm rule writes one new object per alarm under alarms/<siteId>/<date>/; object keys are generated at run time, so the grant is the alarms/ prefix of the data bucket and PutObject only.',
    });
    ruleRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'], resources: [errors.logGroupArn] }),
    );

    const ruleName = 'dcmms_alarms';
    this.alarmRule = new CfnTopicRule(this, 'AlarmRule', {
      ruleName,
      topicRulePayload: {
        description: 'dCMMS Edge: site alarms to SNS and S3',
        // The contract's filter for every site's alarms (dcmms/+/alarms); topic(2) is the siteId.
        sql: `SELECT * FROM '${mqttResource('alarms')}'`,
        awsIotSqlVersion: '2016-03-23',
        ruleDisabled: false,
        actions: [
          { sns: { targetArn: this.alarmTopic.topicArn, roleArn: ruleRole.roleArn, messageFormat: 'RAW' } },
          {
            s3: {
              bucketName: this.dataBucket.bucketName,
              key: `${ALARMS_PREFIX}\${topic(2)}/\${parse_time("yyyy/MM/dd", timestamp())}/\${timestamp()}-\${newuuid()}`,
              roleArn: ruleRole.roleArn,
            },
          },
        ],
        errorAction: { cloudwatchLogs: { logGroupName: errors.logGroupName, roleArn: ruleRole.roleArn } },
      },
    });
    // The role's policy must exist before IoT validates the rule's actions.
    this.alarmRule.node.addDependency(ruleRole);
  }
}

/** How cdk-nag names a bucket ARN in finding ids: `<LogicalId.Arn>`. */
export function bucketArnRef(bucket: s3.Bucket): string {
  return `${Stack.of(bucket).getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn`;
}
