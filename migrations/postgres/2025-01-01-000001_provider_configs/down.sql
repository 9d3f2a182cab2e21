DROP TABLE provider_config_secrets;
DROP TABLE provider_configs;
