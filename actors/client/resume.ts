import { ResumeStatus } from '../../protocol/constants.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';

/** What a client does when the server cannot resume a transfer after a reconnection. */
export type ResumeFailurePolicy = 'restart' | 'fail';

/** The -76x error a RESUME_RESPONSE status other than RESUMABLE stands for. */
export function resumeFailure(status: number, transferId: string): FtsError {
  switch (status) {
    case ResumeStatus.NOT_FOUND:
      return new FtsError(ErrorCode.RESUME_TRANSFER_NOT_FOUND, 'the server does not know this transfer any more', { transferId });
    case ResumeStatus.FILE_CHANGED:
      return new FtsError(ErrorCode.RESUME_FILE_CHANGED, 'the file changed since the transfer began', { transferId });
    case ResumeStatus.STATE_CORRUPTED:
      return new FtsError(ErrorCode.RESUME_STATE_CORRUPTED, "the server's checkpoint is corrupted", { transferId });
    case ResumeStatus.EXPIRED:
      return new FtsError(ErrorCode.RESUME_STATE_INVALID, "the server's checkpoint expired", { transferId });
    default:
      return new FtsError(ErrorCode.RESUME_STATE_INVALID, `unknown resume status ${status}`, { transferId });
  }
}

const NAMES = ['resumable', 'not_found', 'file_changed', 'state_corrupted', 'expired'] as const;
export type ResumeStatusName = (typeof NAMES)[number] | 'unknown';

export function resumeStatusName(status: number): ResumeStatusName {
  return NAMES[status] ?? 'unknown';
}
