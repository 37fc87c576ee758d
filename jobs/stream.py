from clickagg.jobs import stream

stream.main()
