import { createHash } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { DomainError, InvalidInputError, NotFoundError } from '../common/errors';
import { Transactions } from '../common/transactions';
import { requireSignedInUser } from '../common/request-context';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';

export interface EvidenceFileView {
  sha256: string;
  sizeBytes: number;
  mediaType: string;
  fileName: string | null;
  uploadedAt: Date;
  uploadedBy: string | null;
}

/** Evidence files, stored once in PostgreSQL and addressed by the SHA-256 of their bytes. */
@Injectable()
export class EvidenceService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  /** Checks the declared size before the body is used, so an oversized upload is never stored. */
  assertDeclaredSize(contentLength: string | undefined): void {
    if (contentLength !== undefined && Number(contentLength) > this.settings.evidenceMaxBytes) {
      throw this.tooLarge(Number(contentLength));
    }
  }

  async upload(
    content: Buffer,
    mediaType: string,
    fileName: string | undefined,
  ): Promise<EvidenceFileView> {
    if (content.length === 0) {
      throw new InvalidInputError('Empty evidence file', [
        { field: 'body', problems: ['the evidence file is empty'] },
      ]);
    }
    if (content.length > this.settings.evidenceMaxBytes) throw this.tooLarge(content.length);
    const user = requireSignedInUser();
    const sha256 = createHash('sha256').update(content).digest('hex');

    return this.transactions.run(async (manager) => {
      const inserted = await manager.query<{ sha256: string }[]>(
        `INSERT INTO evidence_files (sha256, content, size_bytes, media_type, file_name, uploaded_at, uploaded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha256) DO NOTHING RETURNING sha256`,
        [sha256, content, content.length, mediaType, fileName ?? null, this.clock.now(), user.id],
      );
      const view = await this.describe(sha256, manager);
      // The same bytes uploaded again are the same evidence; only the first upload is a change.
      if (inserted.length > 0) {
        await this.audit.record(manager, {
          action: 'evidence.uploaded',
          entityType: 'evidence_file',
          entityId: sha256,
          before: null,
          after: view,
        });
      }
      return view;
    });
  }

  async describe(sha256: string, manager = this.dataSource.manager): Promise<EvidenceFileView> {
    const [row] = await manager.query<EvidenceFileView[]>(
      `SELECT sha256, size_bytes AS "sizeBytes", media_type AS "mediaType", file_name AS "fileName",
              uploaded_at AS "uploadedAt", uploaded_by AS "uploadedBy"
         FROM evidence_files WHERE sha256 = $1`,
      [sha256],
    );
    if (!row) throw new NotFoundError('Evidence file', sha256);
    return row;
  }

  async content(
    sha256: string,
  ): Promise<{ content: Buffer; mediaType: string; fileName: string | null }> {
    const [row] = await this.dataSource.query<
      { content: Buffer; media_type: string; file_name: string | null }[]
    >(`SELECT content, media_type, file_name FROM evidence_files WHERE sha256 = $1`, [sha256]);
    if (!row) throw new NotFoundError('Evidence file', sha256);
    return { content: row.content, mediaType: row.media_type, fileName: row.file_name };
  }

  private tooLarge(size: number): DomainError {
    return new DomainError(
      413,
      'EVIDENCE.TOO_LARGE',
      `The evidence file is ${size} bytes; the limit is ${this.settings.evidenceMaxBytes}`,
      { sizeBytes: size, limitBytes: this.settings.evidenceMaxBytes },
    );
  }
}
