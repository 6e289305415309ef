import { Injectable, Logger } from '@nestjs/common';

/** Receives campaign changes after they commit, e.g. to schedule or cancel reminders. */
export interface ReviewListener {
  campaignOpened(campaignId: string): Promise<void>;
  itemsChanged(campaignId: string, reviewerIds: string[]): Promise<void>;
  campaignClosed(campaignId: string): Promise<void>;
}

/**
 * Tells listeners about committed campaign changes. A listener failure is logged and does not
 * undo the change: listeners keep derived state that their own reconciliation can rebuild.
 */
@Injectable()
export class ReviewEvents {
  private readonly logger = new Logger('ReviewEvents');
  private readonly listeners: ReviewListener[] = [];

  register(listener: ReviewListener): void {
    this.listeners.push(listener);
  }

  async campaignOpened(campaignId: string): Promise<void> {
    await this.notify('campaignOpened', campaignId, (l) => l.campaignOpened(campaignId));
  }

  async itemsChanged(campaignId: string, reviewerIds: (string | null)[]): Promise<void> {
    const ids = [...new Set(reviewerIds.filter((id): id is string => id !== null))];
    await this.notify('itemsChanged', campaignId, (l) => l.itemsChanged(campaignId, ids));
  }

  async campaignClosed(campaignId: string): Promise<void> {
    await this.notify('campaignClosed', campaignId, (l) => l.campaignClosed(campaignId));
  }

  private async notify(
    event: string,
    campaignId: string,
    call: (listener: ReviewListener) => Promise<void>,
  ): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await call(listener);
      } catch (error) {
        this.logger.warn({ err: error, event, campaignId }, 'Review listener failed');
      }
    }
  }
}
