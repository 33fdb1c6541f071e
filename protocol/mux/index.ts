// Stream multiplexing inside a secure channel: see protocol/README.md, "Stream multiplexing".
export { MuxSession, type MuxSessionOptions } from './session.js';
export { MuxStream, RECEIVE_TRANSITIONS, SEND_TRANSITIONS, type ReceiveState, type SendState } from './stream.js';
export { FrameType, FRAME_NAMES, FRAME_TYPE_COUNT, frameHeader, readFrameHeader, writeFrameHeader, type FrameHeader } from './frames.js';
