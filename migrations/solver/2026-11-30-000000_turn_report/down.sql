DROP TABLE turn_report;
