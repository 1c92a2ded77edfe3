export { FileServer } from './server';
export type { FileServerOptions, FileServerStats } from './server';
export { putFile, getFile, TransferError, reasonOf } from './client';
export type { PutOptions, GetOptions, TransferOptions, TransferResult, Progress, FailureReason } from './client';
export {
  encode, decode, checkName, nameProblem, ProtocolError, MessageType, ErrorCode, MAX_MESSAGE_SIZE, MAX_NAME_BYTES, SHA256_BYTES,
} from './protocol';
export type {
  Message, Request, Reply, PutRequest, GetRequest, AcceptReply, StoredReply, SendingReply, ErrorReply, ErrorCodeName,
} from './protocol';
export { FileHasher, HashJob } from './hasher';
export { FileStore, PARTIAL_DIR } from './store';
