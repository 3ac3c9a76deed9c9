-- How full a finished backup cycle kept its slots: the seconds backups ran,
-- summed, over (slots the limits allow at once × the cycle's duration).
-- Written by the conductor that closes the cycle; NULL for other kinds and
-- for cycles closed before this column existed.
ALTER TABLE cycles ADD COLUMN slot_utilisation DOUBLE NULL;
