DROP TABLE settings_documents;
DROP TABLE task_assignments;
