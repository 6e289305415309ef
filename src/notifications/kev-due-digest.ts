import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { Clock } from '../common/clock';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { SchedulerService } from '../scheduling/scheduler.service';
import { FindingsService, FindingView } from '../vulnerabilities/findings.service';
import { NOTIFICATIONS_QUEUE } from './delivery-queue';
import { NotificationsService } from './notifications.service';

export const KEV_DIGEST_JOB = 'kev.due-digest';
export const KEV_DUE_EVENT = 'kev.findings_due';

/**
 * Tells each system owner, once a day, about their open findings that are overdue or due within
 * KEV_DIGEST_LEAD_DAYS: one digest per owner and day, never one message per finding.
 */
@Injectable()
export class KevDueDigest implements OnModuleInit {
  private readonly logger = new Logger('KevDueDigest');

  constructor(
    private readonly dataSource: DataSource,
    private readonly findings: FindingsService,
    private readonly notifications: NotificationsService,
    private readonly scheduler: SchedulerService,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  onModuleInit(): void {
    this.scheduler.handle(NOTIFICATIONS_QUEUE, KEV_DIGEST_JOB, () => this.sendDigests());
    this.scheduler.scheduleRecurring({
      queue: NOTIFICATIONS_QUEUE,
      schedulerId: 'kev-due-digest',
      cron: this.settings.kevDigestCron,
      jobName: KEV_DIGEST_JOB,
      data: {},
    });
  }

  /** Publishes today's digest for every owner with findings due; a second run the same day is a no-op. */
  async sendDigests(): Promise<{ owners: number; published: number }> {
    const now = this.clock.now();
    const horizon = new Date(now.getTime() + this.settings.kevDigestLeadDays * 86_400_000);
    const owners = await this.dataSource.query<{ id: string }[]>(
      `SELECT DISTINCT s.owner_id AS id FROM systems s JOIN users u ON u.id = s.owner_id
        WHERE u.active AND s.lifecycle_status <> 'retired'`,
    );
    let published = 0;
    for (const owner of owners) {
      const due = await this.findings.dueForOwner(owner.id, horizon);
      if (due.length === 0) continue;
      const day = now.toISOString().slice(0, 10);
      const eventId = await this.notifications.publish({
        type: KEV_DUE_EVENT,
        dedupeKey: `kev-due-${owner.id}-${day}`,
        title: `${due.length} vulnerability finding(s) overdue or due by ${horizon.toISOString().slice(0, 10)}`,
        body: due.map((finding) => describe(finding, now)).join('\n'),
        payload: {
          ownerId: owner.id,
          day,
          findings: due.map((finding) => ({
            id: finding.id,
            vulnerabilityId: finding.vulnerabilityId,
            systemId: finding.systemId,
            systemName: finding.systemName,
            dueAt: finding.dueAt,
            status: finding.status,
            knownRansomwareUse: finding.knownRansomwareUse,
          })),
        },
        recipients: [owner.id],
      });
      if (eventId) published += 1;
    }
    this.logger.log({ owners: owners.length, published }, 'KEV due-date digests published');
    return { owners: owners.length, published };
  }
}

function describe(finding: FindingView, now: Date): string {
  const due = new Date(finding.dueAt);
  const when =
    due <= now
      ? `overdue since ${due.toISOString().slice(0, 10)}`
      : `due ${due.toISOString().slice(0, 10)}`;
  const ransomware = finding.knownRansomwareUse ? ', used in ransomware campaigns' : '';
  return `${finding.vulnerabilityId} on ${finding.systemName}: ${when}${ransomware}`;
}
