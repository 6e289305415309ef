import { accountImport } from './account-import/account-import.bench';
import { auditAppend } from './audit-append/audit-append.bench';
import type { Benchmark } from './benchmark';
import { kevImport } from './kev-import/kev-import.bench';
import { reviewReminders } from './review-reminders/review-reminders.bench';
import { reviewCampaign } from './review-campaign/review-campaign.bench';
import { systemsList } from './systems-list/systems-list.bench';

/** Every benchmark that `npm run bench` can run, in the order it runs them. Add new ones here. */
export const BENCHMARKS: Benchmark[] = [
  systemsList,
  kevImport,
  auditAppend,
  accountImport,
  reviewCampaign,
  reviewReminders,
];
