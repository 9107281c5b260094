-- A replay claims the records it is about to publish until claimed_until (Unix ms), so
-- that two operators (or two replicas) replaying the same records at once publish each
-- once. A claim left by a process that died expires; a replayed record's claim no longer
-- matters (it is not 'failed').
ALTER TABLE failed_messages ADD COLUMN claimed_until INTEGER;
