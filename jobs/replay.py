from clickagg.jobs import replay

replay.main()
