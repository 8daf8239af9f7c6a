select s.id as shipment_id, s.order_id, s.carrier_id, s.region_id, s.warehouse_id,
       s.shipped_at, s.promised_at, s.delivered_at,
       s.delivered_at > s.promised_at as is_late,
       extract(epoch from s.delivered_at - s.shipped_at) / 3600.0 as delivery_hours
from logistics.shipments s
where s.delivered_at is not null
