DROP TABLE master_key_checks;
